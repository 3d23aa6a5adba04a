# Ssh: the same rules as container-hardening's ssh.yml, in InSpec syntax.

control 'ch-ssh-01' do
  impact 0.5
  title 'sshd_config is private to root'
  desc 'The SSH daemon configuration reveals and controls remote access.'
  tag nist: %w[AC-3 CM-5], severity: 'medium'
  if file('/etc/ssh/sshd_config').exist?
    describe file('/etc/ssh/sshd_config') do
      it { should be_owned_by 'root' }
      it { should_not be_more_permissive_than('0600') }
    end
  else
    describe file('/etc/ssh/sshd_config') do
      it { should_not exist }
    end
  end
end

control 'ch-ssh-02' do
  impact 0.7
  title 'SSH root login is disabled'
  desc 'Direct root login removes accountability and invites brute force.'
  tag nist: %w[AC-6 IA-2], severity: 'high'
  if file('/etc/ssh/sshd_config').exist?
    describe sshd_config do
      its('PermitRootLogin') { should cmp('no') }
    end
  else
    describe file('/etc/ssh/sshd_config') do
      it { should_not exist }
    end
  end
end

control 'ch-ssh-03' do
  impact 0.5
  title 'SSH password authentication is disabled'
  desc 'Keys resist guessing; passwords do not.'
  tag nist: %w[IA-2 IA-5], severity: 'medium'
  if file('/etc/ssh/sshd_config').exist?
    describe sshd_config do
      its('PasswordAuthentication') { should cmp('no') }
    end
  else
    describe file('/etc/ssh/sshd_config') do
      it { should_not exist }
    end
  end
end

control 'ch-ssh-04' do
  impact 0.7
  title 'SSH refuses empty passwords'
  desc 'Accounts without a password must never be reachable over the network.'
  tag nist: %w[IA-2 IA-5], severity: 'high'
  if file('/etc/ssh/sshd_config').exist?
    describe sshd_config do
      its('PermitEmptyPasswords') { should be_nil.or(cmp('no')) }
    end
  else
    describe file('/etc/ssh/sshd_config') do
      it { should_not exist }
    end
  end
end

control 'ch-ssh-05' do
  impact 0.3
  title 'SSH X11 forwarding is disabled'
  desc 'X11 forwarding exposes the client\'s display to the server side.'
  tag nist: %w[CM-7 AC-17], severity: 'low'
  if file('/etc/ssh/sshd_config').exist?
    describe sshd_config do
      its('X11Forwarding') { should be_nil.or(cmp('no')) }
    end
  else
    describe file('/etc/ssh/sshd_config') do
      it { should_not exist }
    end
  end
end

control 'ch-ssh-06' do
  impact 0.3
  title 'SSH limits authentication attempts'
  desc 'A low MaxAuthTries slows online guessing.'
  tag nist: %w[AC-7], severity: 'low'
  if file('/etc/ssh/sshd_config').exist?
    describe sshd_config do
      its('MaxAuthTries') { should cmp <= 4 }
    end
  else
    describe file('/etc/ssh/sshd_config') do
      it { should_not exist }
    end
  end
end

control 'ch-ssh-07' do
  impact 0.5
  title 'SSH ignores .rhosts'
  desc 'rhosts trust is host-name based and trivially spoofed.'
  tag nist: %w[IA-2 AC-17], severity: 'medium'
  if file('/etc/ssh/sshd_config').exist?
    describe sshd_config do
      its('IgnoreRhosts') { should be_nil.or(cmp('yes')) }
    end
  else
    describe file('/etc/ssh/sshd_config') do
      it { should_not exist }
    end
  end
end

control 'ch-ssh-08' do
  impact 0.5
  title 'SSH host-based authentication is disabled'
  desc 'Host-based trust lets a compromised host log in anywhere it is trusted.'
  tag nist: %w[IA-2 AC-17], severity: 'medium'
  if file('/etc/ssh/sshd_config').exist?
    describe sshd_config do
      its('HostbasedAuthentication') { should be_nil.or(cmp('no')) }
    end
  else
    describe file('/etc/ssh/sshd_config') do
      it { should_not exist }
    end
  end
end

control 'ch-ssh-09' do
  impact 0.3
  title 'SSH does not accept user environment'
  desc 'User-supplied environment (LD_PRELOAD) can bypass restrictions.'
  tag nist: %w[CM-6 AC-3], severity: 'low'
  if file('/etc/ssh/sshd_config').exist?
    describe sshd_config do
      its('PermitUserEnvironment') { should be_nil.or(cmp('no')) }
    end
  else
    describe file('/etc/ssh/sshd_config') do
      it { should_not exist }
    end
  end
end

control 'ch-ssh-10' do
  impact 0.3
  title 'SSH login grace time is short'
  desc 'Long grace times let unauthenticated connections exhaust the daemon.'
  tag nist: %w[AC-12 SC-5], severity: 'low'
  if file('/etc/ssh/sshd_config').exist?
    describe sshd_config do
      its('LoginGraceTime') { should cmp <= 60 }
    end
  else
    describe file('/etc/ssh/sshd_config') do
      it { should_not exist }
    end
  end
end

control 'ch-ssh-11' do
  impact 0.3
  title 'SSH TCP forwarding is disabled'
  desc 'Forwarding turns the container into a pivot into the cluster network.'
  tag nist: %w[CM-7 SC-7], severity: 'low'
  if file('/etc/ssh/sshd_config').exist?
    describe sshd_config do
      its('AllowTcpForwarding') { should cmp('no') }
    end
  else
    describe file('/etc/ssh/sshd_config') do
      it { should_not exist }
    end
  end
end

control 'ch-ssh-12' do
  impact 0.3
  title 'SSH drops idle sessions'
  desc 'Idle sessions left open can be hijacked.'
  tag nist: %w[AC-12 SC-10], severity: 'low'
  if file('/etc/ssh/sshd_config').exist?
    describe sshd_config do
      its('ClientAliveInterval') { should cmp >= 1 }
      its('ClientAliveInterval') { should cmp <= 300 }
    end
  else
    describe file('/etc/ssh/sshd_config') do
      it { should_not exist }
    end
  end
end

control 'ch-ssh-13' do
  impact 0.7
  title 'No SSH host keys are baked into the image'
  desc 'Host keys in an image are shared by every container started from it, so one leak impersonates them all (CIS 4.10 intent).'
  tag nist: %w[SC-12 IA-5], cis: '4.10', severity: 'high'
  if directory('/etc/ssh').exist?
    describe command(ContainerChecks.find_command(%w[/etc/ssh], %w[/etc/ssh/sshd_config /etc/ssh/ssh_config /etc/ssh/moduli /etc/ssh/sshd_config.d /etc/ssh/ssh_config.d], '-type f')) do
      its('stdout') { should be_empty }
      its('exit_status') { should eq 0 }
    end
  else
    describe directory('/etc/ssh') do
      it { should_not exist }
    end
  end
end
