# Filesystem: the same rules as container-hardening's filesystem.yml, in InSpec syntax.

control 'ch-fs-01' do
  impact 0.5
  title 'No world-writable files or directories'
  desc 'World-writable paths let any process tamper with data and code others trust (SP 800-190 4.1.4).'
  tag nist: %w[AC-3 AC-6], cis: '4.8', severity: 'medium'
  describe command(ContainerChecks.find_command(input('search_paths'), input('search_exclude'), '! -type l -perm -0002 ! \( -type d -perm -1000 \)')) do
    its('stdout') { should be_empty }
    its('exit_status') { should eq 0 }
  end
end

control 'ch-fs-02' do
  impact 0.7
  title 'No setuid or setgid binaries'
  desc 'Setuid and setgid binaries are the common privilege-escalation path; CIS 4.8 asks to remove them.'
  tag nist: %w[AC-6 CM-7], cis: '4.8', severity: 'high'
  found = command(ContainerChecks.find_command(input('search_paths'), input('search_exclude'), '! -type l \( -perm -4000 -o -perm -2000 \)'))
  describe 'Setuid and setgid files not allowed' do
    subject { found.stdout.lines.map(&:chomp) - input('allowed_setuid') }
    it { should be_empty }
  end
  describe found do
    its('exit_status') { should eq 0 }
  end
end

control 'ch-fs-03' do
  impact 0.3
  title 'No files owned by unknown users or groups'
  desc 'Orphaned files are adopted by whichever account later gets that id.'
  tag nist: %w[AC-3 CM-6], severity: 'low'
  listing = command(ContainerChecks.find_command(input('search_paths'), input('search_exclude'), "-exec stat -c '%u %g %n' {} +"))
  orphans = ContainerChecks.orphans(listing.stdout, passwd.uids.map(&:to_i), etc_group.gids)
  describe 'Files owned by unknown users or groups' do
    subject { orphans }
    it { should be_empty }
  end
end

control 'ch-fs-04' do
  impact 0.5
  title '/tmp has the sticky bit'
  desc 'Without the sticky bit any user can delete or replace other users\' temporary files.'
  tag nist: %w[AC-3], severity: 'medium'
  if file('/tmp').exist?
    describe file('/tmp') do
      it { should be_directory }
      it { should be_sticky }
    end
  else
    describe file('/tmp') do
      it { should_not exist }
    end
  end
end

control 'ch-fs-05' do
  impact 0.3
  title '/var/tmp has the sticky bit'
  desc '/var/tmp is shared scratch space like /tmp and needs the same protection.'
  tag nist: %w[AC-3], severity: 'low'
  if file('/var/tmp').exist?
    describe file('/var/tmp') do
      it { should be_directory }
      it { should be_sticky }
    end
  else
    describe file('/var/tmp') do
      it { should_not exist }
    end
  end
end

control 'ch-fs-06' do
  impact 0.5
  title '/etc is root-owned and not writable by others'
  desc 'Configuration must only be changed by root.'
  tag nist: %w[CM-5 AC-3], severity: 'medium'
  describe file('/etc') do
    it { should exist }
    it { should be_directory }
    it { should be_owned_by 'root' }
    it { should_not be_more_permissive_than('0755') }
  end
end

control 'ch-fs-07' do
  impact 0.7
  title '/usr/bin is root-owned and not writable by others'
  desc 'A writable binary directory lets any process plant trojans in PATH.'
  tag nist: %w[CM-5 SI-7], severity: 'high'
  describe file('/usr/bin') do
    it { should exist }
    it { should be_directory }
    it { should be_owned_by 'root' }
    it { should_not be_more_permissive_than('0755') }
  end
end

control 'ch-fs-08' do
  impact 0.5
  title '/usr/sbin is root-owned and not writable by others'
  desc 'A writable system binary directory lets any process plant trojans.'
  tag nist: %w[CM-5 SI-7], severity: 'medium'
  if file('/usr/sbin').exist?
    describe file('/usr/sbin') do
      it { should be_directory }
      it { should be_owned_by 'root' }
      it { should_not be_more_permissive_than('0755') }
    end
  else
    describe file('/usr/sbin') do
      it { should_not exist }
    end
  end
end

control 'ch-fs-09' do
  impact 0.5
  title '/usr/local/bin is root-owned and not writable by others'
  desc 'Locally installed tools are on PATH before system tools.'
  tag nist: %w[CM-5 SI-7], severity: 'medium'
  if file('/usr/local/bin').exist?
    describe file('/usr/local/bin') do
      it { should be_directory }
      it { should be_owned_by 'root' }
      it { should_not be_more_permissive_than('0755') }
    end
  else
    describe file('/usr/local/bin') do
      it { should_not exist }
    end
  end
end

control 'ch-fs-10' do
  impact 0.5
  title 'The root home directory is private'
  desc '/root holds credentials and history that only root should read.'
  tag nist: %w[AC-3 AC-6], severity: 'medium'
  if file('/root').exist?
    describe file('/root') do
      it { should be_directory }
      it { should be_owned_by 'root' }
      it { should_not be_more_permissive_than('0700') }
    end
  else
    describe file('/root') do
      it { should_not exist }
    end
  end
end

control 'ch-fs-11' do
  impact 0.3
  title '/var/log is not writable by others'
  desc 'Writable log directories let processes forge or erase audit records.'
  tag nist: %w[AU-9], severity: 'low'
  if file('/var/log').exist?
    describe file('/var/log') do
      it { should be_directory }
      it { should be_owned_by 'root' }
      it { should_not be_more_permissive_than('0755') }
    end
  else
    describe file('/var/log') do
      it { should_not exist }
    end
  end
end

control 'ch-fs-12' do
  impact 0.5
  title '/etc/crontab is private to root'
  desc 'Readable crontabs reveal scheduled privileged jobs; writable ones run code as root.'
  tag nist: %w[AC-3 CM-6], severity: 'medium'
  if file('/etc/crontab').exist?
    describe file('/etc/crontab') do
      it { should be_owned_by 'root' }
      it { should_not be_more_permissive_than('0600') }
    end
  else
    describe file('/etc/crontab') do
      it { should_not exist }
    end
  end
end

control 'ch-fs-13' do
  impact 0.3
  title '/etc/cron.d is private to root'
  desc 'Files dropped into cron.d run as the user they name, usually root.'
  tag nist: %w[AC-3 CM-6], severity: 'low'
  if file('/etc/cron.d').exist?
    describe file('/etc/cron.d') do
      it { should be_owned_by 'root' }
      it { should_not be_more_permissive_than('0700') }
    end
  else
    describe file('/etc/cron.d') do
      it { should_not exist }
    end
  end
end

control 'ch-fs-14' do
  impact 0.7
  title '/etc/sudoers is read-only and root-owned'
  desc 'sudoers decides who becomes root; it must not be writable or world-readable.'
  tag nist: %w[AC-6 CM-5], severity: 'high'
  if file('/etc/sudoers').exist?
    describe file('/etc/sudoers') do
      it { should be_owned_by 'root' }
      it { should_not be_more_permissive_than('0440') }
    end
  else
    describe file('/etc/sudoers') do
      it { should_not exist }
    end
  end
end

control 'ch-fs-15' do
  impact 0.3
  title '/etc/hosts is root-owned and not writable by others'
  desc 'A writable hosts file redirects name resolution to an attacker.'
  tag nist: %w[SC-20 CM-5], severity: 'low'
  if file('/etc/hosts').exist?
    describe file('/etc/hosts') do
      it { should be_owned_by 'root' }
      it { should_not be_more_permissive_than('0644') }
    end
  else
    describe file('/etc/hosts') do
      it { should_not exist }
    end
  end
end

control 'ch-fs-16' do
  impact 0.3
  title '/etc/resolv.conf is not writable by others'
  desc 'A writable resolver config redirects DNS to an attacker.'
  tag nist: %w[SC-20 CM-5], severity: 'low'
  if file('/etc/resolv.conf').exist?
    describe file('/etc/resolv.conf') do
      it { should_not be_more_permissive_than('0644') }
    end
  else
    describe file('/etc/resolv.conf') do
      it { should_not exist }
    end
  end
end

control 'ch-fs-17' do
  impact 0.3
  title 'The login shell profile sets a restrictive umask'
  desc 'A umask of 027 keeps new files from being readable by unrelated users.'
  tag nist: %w[AC-3 CM-6], severity: 'low'
  describe file('/etc/profile') do
    it { should exist }
    its('content') { should match(/^\s*umask\s+0?0?[27]7\b/) }
  end
end

control 'ch-fs-18' do
  impact 0.7
  title 'No /etc/ld.so.preload'
  desc 'A preload list injects a library into every dynamically linked process, a classic rootkit hook.'
  tag nist: %w[SI-7 CM-5], severity: 'high'
  describe file('/etc/ld.so.preload') do
    it { should_not exist }
  end
end

control 'ch-fs-19' do
  impact 0.9
  title 'No Docker socket inside the container'
  desc 'Access to the container runtime socket is root on the host (SP 800-190 4.3.2, CIS 5.31 intent).'
  tag nist: %w[AC-6 SC-39], severity: 'critical'
  describe file('/var/run/docker.sock') do
    it { should_not exist }
  end
  describe file('/run/docker.sock') do
    it { should_not exist }
  end
end
